"""The Gemini API's Batch Mode, and the generateContent translation Vertex AI's Gemini shares."""
