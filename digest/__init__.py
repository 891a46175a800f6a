"""digest: research-paper dumps in, a themed newsletter out (feeds and e-mail)."""

__version__ = "0.1.0"
