from __future__ import annotations

from archiver.cli import main

raise SystemExit(main())
