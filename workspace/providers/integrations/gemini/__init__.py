"""The Gemini API's Veo surface (``predictLongRunning``)."""
