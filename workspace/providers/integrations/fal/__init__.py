"""The fal.ai queue, for its Veo 3.1 endpoints."""
