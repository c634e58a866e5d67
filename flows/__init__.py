"""Prefect flows over the dvc.yaml graph: the only code in tuneforge that imports prefect."""
