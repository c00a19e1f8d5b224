from mm_dagster.cli.entry import main

if __name__ == "__main__":
    raise SystemExit(main())
