"""fcocr: serverless OCR for Alibaba Cloud Function Compute.

An OSS upload becomes a JSON result document beside the file. The handlers in
``functions/`` are thin; everything lives here so tests reach it.
"""

__version__ = "0.1.0"
