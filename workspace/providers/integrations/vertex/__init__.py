"""Veo on Google's Gemini Enterprise Agent Platform (formerly Vertex AI)."""
