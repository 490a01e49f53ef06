"""`python -m ci_env` runs the same CLI as the `ci-env` console script."""

from ci_env.cli import main

if __name__ == "__main__":
    main()
