"""The data plane: phase workers that read `migration.phase-tasks`, run
extract, transform, validate, load and reconcile between named PostgreSQL
databases, and report on `migration.phase-results`."""
