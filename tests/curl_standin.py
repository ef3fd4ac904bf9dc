"""A stand-in for the few curl options the README uses, for machines that have no curl.

The README walkthrough is tested on every machine: where curl is missing, this script answers
to the name ``curl`` instead (see tests/test_project_files.py). It knows -s, -X, -H, -d,
--fail, --fail-with-body and --max-time; anything else is an error, so the README cannot drift
to options this stand-in would silently ignore.
"""

from __future__ import annotations

import sys

import httpx

FAILED_HTTP = 22  # curl's exit status for an HTTP error with --fail


def main(argv: list[str]) -> int:
    method, url, body = None, None, None
    headers: list[tuple[str, str]] = []
    fail, show_failed_body, timeout = False, False, 30.0
    args = iter(argv)
    for arg in args:
        if arg == "-s":
            continue
        if arg == "-X":
            method = next(args)
        elif arg == "-H":
            name, _, value = next(args).partition(":")
            headers.append((name.strip(), value.strip()))
        elif arg == "-d":
            body = next(args)
        elif arg in ("--fail", "--fail-with-body"):
            fail, show_failed_body = True, arg == "--fail-with-body"
        elif arg == "--max-time":
            timeout = float(next(args))
        elif arg.startswith("-"):
            print(f"curl stand-in: unsupported option {arg}", file=sys.stderr)
            return 2
        else:
            url = arg
    if url is None:
        print("curl stand-in: no URL", file=sys.stderr)
        return 2
    method = method or ("POST" if body is not None else "GET")
    response = httpx.request(method, url, headers=headers, content=body, timeout=timeout)
    if fail and response.status_code >= 400:
        if show_failed_body:
            sys.stdout.write(response.text)
        return FAILED_HTTP
    sys.stdout.write(response.text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
