"""Operator command-line tools that talk to a running gateway over HTTP.

`python -m cli.keys ...` manages virtual keys through the /key/* endpoints with the master
key, against the local server (`make serve`) or a deployed stack.
"""
