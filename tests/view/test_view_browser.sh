#!/usr/bin/env bash
# kinsync view in a real browser: Debian's chromium driven by python3-selenium (tests/view/view_browser.py).
# Uses /usr/bin/python3: python3-selenium is a Debian package, invisible to other pythons on PATH.
set -u
if [ ! -x /usr/bin/python3 ] || ! /usr/bin/python3 -c 'import selenium' 2>/dev/null; then
  echo "SKIP: /usr/bin/python3 with python3-selenium is needed (scripts/setup.sh installs it)"
  exit 77
fi
exec /usr/bin/python3 "$KS_SOURCE_DIR/tests/view/view_browser.py"
