REVOKE SELECT ON _yoyo_migration FROM optiinfra_app;
