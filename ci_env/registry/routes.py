"""What the per-implementation tables of ``ci_env.registry`` share: the implementation's ``delete_route`` keys
each table (removers in ``untag.REMOVERS``, tag listings in ``listing``, namespace listings in ``namespaces``),
and each entry names a ``"module:Class"`` in ``ci_env.registry.vendors`` built lazily with the run's context, so
that ``ci-env setup`` never imports a vendor module (nor its SDK).
"""

from __future__ import annotations

import importlib
from typing import Protocol

from ci_env.errors import RegistryError


class RoutedImplementation(Protocol):
    """A registry implementation, as the tables know it: by the route its tags are removed through."""

    @property
    def delete_route(self) -> str: ...


def build(target: str, context: object, what: str) -> object:
    """``Class(context)`` for ``target`` (``"module:Class"``), its module imported now. RegistryError naming
    ``what`` when the module cannot be imported (an SDK missing, e.g. boto3 for ECR)."""
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise RegistryError(f"{what} is not available ({exc.name} is missing)") from None
    built: object = getattr(module, attr)(context)
    return built
