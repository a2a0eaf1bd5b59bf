"""Constant Contact v3 OAuth2: obtaining the first refresh token (``python -m airflow_provider_cc.auth login``),
the token cache and refresh (:mod:`.tokens`) and where tokens live between processes (:mod:`.store`)."""
