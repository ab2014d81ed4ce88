"""Web pages served by the core (HTML, no JavaScript): thin views over `connector.services`."""
