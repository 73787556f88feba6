"""The Runway API."""
