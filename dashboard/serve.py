"""Start the dashboard: `python -m dashboard.serve [streamlit options]` (what `make run` does).

Streamlit 1.67 decides once per process, before any script runs, whether a `pages/` folder beside the
app means old-style pages; `st.navigation` turns that off, but only after the first session has tried
to resolve its URL the old way ("Page not found" over a deep link such as /run). This app uses
st.navigation only, so the launcher says so up front.
"""

import sys
from pathlib import Path

from streamlit.runtime.pages_manager import PagesManager
from streamlit.web import cli

APP = Path(__file__).resolve().parent.parent / "streamlit_app.py"


def main() -> None:
    PagesManager.uses_pages_directory = False
    sys.argv = ["streamlit", "run", str(APP), *sys.argv[1:]]
    sys.exit(cli.main())


if __name__ == "__main__":
    main()
