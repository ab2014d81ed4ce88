import logging
from tests.conftest import good_certificate, day, certificate, policy

def test_probe(api, make_vendor, app, caplog):
    caplog.set_level(logging.ERROR)
    vid = make_vendor()
    refs = [{"system": "s", "external_id": str(i)} for i in range(1500)]
    r = api.post("/api/v1/vendors", {"name": "x", "external_refs": refs}); print("refs1500", r.status_code)
    r = api.post("/api/v1/vendors", {"name": "x", "work_types": [f"w{i}" for i in range(3000)]}); print("wt3000", r.status_code)
    r = api.post("/api/v1/vendors", {"name": "x", "email": "a@" + "b." * 3000 + "com"}); print("email", r.status_code)
    pols = [policy("general_liability", f"GL-{i}", -1, 300) for i in range(50)]
    r = api.post(f"/api/v1/vendors/{vid}/certificates", certificate(*pols)); print("50 pols", r.status_code)
    r = api.post("/api/v1/gate", {"work_order": {"system": "d", "external_id": "1"}, "vendor": {"system": "dispatch", "external_id": "nope"}, "work_type": "PLUMBING", "region": "us-east", "scheduled_start": day(0), "scheduled_end": day(1)}); print("gate unknown", r.status_code, r.get_json())
    r = api.post("/api/v1/gate", {"work_order": {"system": "d", "external_id": "2"}, "vendor_id": 2**31-1, "work_type": "p", "region": "us-east", "scheduled_start": day(0), "scheduled_end": day(1)}); print("gate maxint", r.status_code, r.get_json())
    r = api.post(f"/api/v1/vendors/{vid}/certificates", {**good_certificate(), "received_at": "2025-01-01T00:00:00"}); print("naive recv", r.status_code)
    for rec in caplog.records:
        print("LOG", rec.getMessage()[:300])
