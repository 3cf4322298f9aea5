"""erasure: GDPR/CCPA erasure requests for a video-analytics view store.

The library is usable without the CLI; ``erasure.cli`` only parses options,
calls into these modules and turns their results into text and exit codes.
"""

__version__ = "0.1.0"
