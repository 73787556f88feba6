"""OpenAI Videos (``/v1/videos``), as gateways still serve it."""
