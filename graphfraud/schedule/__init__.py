"""Nightly operations: locks so runs never overlap (`lock`), the current pointer the service and
the next night follow (`pointer`, moved after `checks`), the runs directory's states (`runs`)
and one whole night for cron / systemd (`nightly`). The Airflow DAG (services/airflow/) calls
the same verbs."""
