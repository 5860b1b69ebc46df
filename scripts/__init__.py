"""Development tools: the dev environment launcher (devenv.py) and the project's import-linter contracts."""
