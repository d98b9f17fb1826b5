"""The PostgreSQL read model: schema migrations, the projector, and queries."""
