from mm_dagster.cli.entry import main

raise SystemExit(main())
