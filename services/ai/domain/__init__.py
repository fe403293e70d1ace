"""Plain rules of the AI service: embedding, the vector index, recommendations."""
