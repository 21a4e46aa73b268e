import sys

try:
    from .cli import main
except KeyboardInterrupt:  # Ctrl-C while the command line itself is imported, before main() can catch it
    print("elbo: interrupted", file=sys.stderr)
    sys.exit(130)

sys.exit(main())
