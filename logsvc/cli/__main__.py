"""``python -m logsvc.cli``: the same as the ``logsvc`` script."""

from logsvc.cli.main import main

if __name__ == "__main__":
    main()
