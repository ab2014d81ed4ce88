"""One module per external system, each an `adapters.base.Adapter`.

`REGISTRY` names the adapter class of each connection kind; modules are imported on first use,
so a deployment that never talks to a system never imports its client library.
"""

REGISTRY: dict[str, str] = {
    "salesforce": "adapters.salesforce:SalesforceAdapter",
    "business_central": "adapters.business_central:BusinessCentralAdapter",
    "dispatch": "adapters.dispatch:DispatchAdapter",
    "csv": "adapters.csv_files:CsvAdapter",
}
