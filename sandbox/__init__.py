"""Local stand-ins for the peer systems, speaking their real wire protocols over real sockets
(Salesforce REST over HTTPS, Business Central SOAP page services, a REST dispatch API). Used by
`coi demo`, the tests and the benchmarks; never by production code paths. Imports only flask
(plus the standard library and trustme for the throwaway certificate authority)."""
