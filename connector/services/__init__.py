"""Services: each public function is one unit of work on a Session and owns its transaction
boundary (the caller passes a session; the service commits or rolls back)."""
