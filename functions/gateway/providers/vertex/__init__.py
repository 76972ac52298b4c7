"""Vertex AI batch prediction (Gemini, Claude) through Google Cloud's REST APIs."""
