from __future__ import annotations

from archiver.cli.main import main

raise SystemExit(main())
