from ecr_emulator.cli import main

raise SystemExit(main())
