-- Readiness probes of the application (the HTTP service's /readyz) ask which migrations are
-- applied: the application role may read yoyo's list of them, nothing more.
-- depends: 0014_workflow_rollups

GRANT SELECT ON _yoyo_migration TO optiinfra_app;
