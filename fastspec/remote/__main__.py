"""``python -m fastspec.remote serve MODEL [MODEL ...] --port P``: serve fastspec models over V2.

Models: digits_ar, text_mlm, digits_denoiser, digits_mixture, markov3,
markov256, gaussian_mixture, or ``package.module:factory`` (a callable that
returns a fastspec model). The server listens on 127.0.0.1 unless ``--host``
says otherwise and stops on Ctrl-C or SIGTERM.
"""

import argparse


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m fastspec.remote", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve", help="serve models over the Open Inference Protocol (V2)")
    s.add_argument("models", nargs="+", metavar="MODEL")
    s.add_argument("--port", type=int, default=8080)
    s.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default: the loopback address only)")
    s.add_argument("--delay-ms", type=float, default=0.0,
                   help="milliseconds added to every call, to emulate a remote GPU")
    s.add_argument("--instances", type=int, default=1,
                   help="calls of one model computed at once (default 1)")
    s.add_argument("--parent-pid", type=int, default=None,
                   help="stop when this process is gone (start_server passes its own pid)")
    a = p.parse_args(argv)
    if a.delay_ms < 0:
        p.error(f"--delay-ms must be >= 0, got {a.delay_ms}")
    if a.instances < 1:
        p.error(f"--instances must be >= 1, got {a.instances}")
    from .server import serve, stop_with_parent
    if a.parent_pid is not None:
        stop_with_parent(a.parent_pid)
    try:
        serve(a.models, port=a.port, host=a.host, delay=a.delay_ms / 1000.0,
              instances=a.instances)
    except ValueError as exc:          # an unknown model: one line, not a traceback
        p.error(str(exc))


if __name__ == "__main__":
    main()
