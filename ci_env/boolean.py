"""The one boolean parser: which words mean true and false, for every option and variable ci-env reads.

werf reads its boolean variables as ``1``/``true``/``yes`` (and ``0``/``false``/``no``); ci-env accepts those
and ``on``/``off``, in any case, with surrounding blanks ignored. An empty value counts as unset.
Standard library only: CI detection and the login probe use it too.
"""

from __future__ import annotations

from ci_env.errors import ConfigError

#: Words meaning true and false (compared after ``strip().lower()``).
TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off"})


def boolean_word(text: str) -> bool | None:
    """True or False when ``text`` is one of the words, None for anything else (an empty value included)."""
    word = text.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    return None


def parse_boolean(text: str) -> bool:
    """``text`` as a boolean; ConfigError (exit 2) saying which words to use for anything else.

    Callers prefix the message with the option or variable the value came from.
    """
    found = boolean_word(text)
    if found is None:
        raise ConfigError(f"{text!r} is not a boolean: use true or false")
    return found
