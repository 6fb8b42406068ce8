"""NovaCron: serverless real-time monitoring for AWS."""

__version__ = "0.1.0"
