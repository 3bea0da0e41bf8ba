"""Tests for skadestue.link: folding ER return visits, Splink linkage to injured police
persons, and core.casualty. Synthetic people only; the truth is known by construction."""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field

import duckdb
import pandas as pd
import pytest

from skadestue.config import Settings
from skadestue.db import connect
from skadestue.link import LinkReport, link_casualties

HOSPITALS = ("SVS Esbjerg", "SHS Aabenraa", "SHS Sønderborg", "SLB Kolding", "OUH Odense")
#: Rough municipal centres, EPSG:25832.
KOMMUNE_CENTRES = {
    "0510": (528_000, 6_123_000), "0540": (581_000, 6_087_000), "0550": (492_000, 6_088_000),
    "0561": (478_000, 6_150_000), "0563": (468_000, 6_143_000), "0573": (478_000, 6_172_000),
    "0575": (507_000, 6_150_000), "0580": (540_000, 6_100_000),
}
ROAD_USERS = ("cyclist", "car", "pedestrian", "moped", "motorcycle", "e_bike", "van")
ER_SEVERITIES = ("slight", "slight", "serious", "unknown")
POLICE_SEVERITIES = ("slight", "serious", "serious", "killed")
START = dt.datetime(2023, 1, 1)


@dataclass
class World:
    """Synthetic core tables plus the truth: which contacts form one event, which event is
    which police person."""

    rng: random.Random
    er: list[dict] = field(default_factory=list)
    accidents: list[dict] = field(default_factory=list)
    persons: list[dict] = field(default_factory=list)
    #: contact key -> true event id
    contact_event: dict[str, str] = field(default_factory=dict)
    #: true event id -> police key (true links)
    true_links: dict[str, str] = field(default_factory=dict)
    n_contacts: int = 0
    n_events: int = 0
    n_accidents: int = 0
    n_people: int = 0

    # --- building blocks -------------------------------------------------------------
    def pseudonym(self) -> str:
        self.n_people += 1
        return f"pseud{self.n_people:06d}"  # a synthetic pseudonym, never a CPR number

    def place(self, kommunekode: str, spread: float = 5_000) -> tuple[float, float]:
        cx, cy = KOMMUNE_CENTRES[kommunekode]
        return (round(cx + self.rng.uniform(-spread, spread), 1), round(cy + self.rng.uniform(-spread, spread), 1))

    def when(self) -> dt.datetime:
        return START + dt.timedelta(days=self.rng.randrange(0, 365), minutes=self.rng.randrange(6 * 60, 22 * 60))

    def new_event(self) -> str:
        self.n_events += 1
        return f"T{self.n_events:05d}"

    def contact(self, event: str, *, ankomst: dt.datetime, ulykke_tid: dt.datetime | None,
                cpr: str | None, sex: str | None, age: int | None, road_user: str,
                kommunekode: str | None, xy: tuple[float, float] | None, quality: str = "A",
                sygehus: str | None = None, severity: str | None = None,
                ulykkessted: str | None = None) -> str:
        self.n_contacts += 1
        sygehus = sygehus or self.rng.choice(HOSPITALS)
        kontakt_id = f"K-2023-{self.n_contacts:06d}"
        injury_date = (ulykke_tid or ankomst).date()
        self.er.append({
            "sygehus": sygehus, "kontakt_id": kontakt_id, "delivery_id": "er-test",
            "ankomst": ankomst, "ulykke_tid": ulykke_tid, "injury_date": injury_date,
            "cpr_pseudonym": cpr, "sex": sex, "age": age, "road_user": road_user,
            "counterpart": self.rng.choice(("none", "car", "unknown")),
            "ulykkessted": ulykkessted, "kommunekode": kommunekode,
            "severity": severity or self.rng.choice(ER_SEVERITIES),
            "x": xy[0] if xy else None, "y": xy[1] if xy else None,
            "geocode_quality": quality if xy else "none",
        })
        key = f"{sygehus}|{kontakt_id}"
        self.contact_event[key] = event
        return key

    def accident(self, when: dt.datetime, kommunekode: str, xy: tuple[float, float] | None,
                 xy_flag: str | None = None) -> str:
        self.n_accidents += 1
        uheld_id = f"U{self.n_accidents:05d}"
        self.accidents.append({
            "uheld_id": uheld_id, "delivery_id": "pol-test", "uheldsdato": when.date(),
            "klokkeslaet": when.time(), "kommunekode": kommunekode, "severity": "serious",
            "x": xy[0] if xy else None, "y": xy[1] if xy else None,
            "geocode_quality": "police" if xy else "none", "xy_flag": xy_flag,
        })
        return uheld_id

    def person(self, uheld_id: str, elementnr: int, personnr: int, *, cpr: str | None,
               sex: str | None, age: int | None, road_user: str, severity: str) -> str:
        self.persons.append({
            "uheld_id": uheld_id, "elementnr": elementnr, "personnr": personnr,
            "delivery_id": "pol-test", "road_user": road_user, "counterpart": "car",
            "severity": severity, "age": age, "sex": sex, "cpr_pseudonym": cpr,
        })
        return f"{uheld_id}|{elementnr}|{personnr}"

    def near(self, xy: tuple[float, float], metres: float) -> tuple[float, float]:
        return (round(xy[0] + self.rng.uniform(-metres, metres) / 1.5, 1),
                round(xy[1] + self.rng.uniform(-metres, metres) / 1.5, 1))

    # --- scenarios -------------------------------------------------------------------
    def er_only(self, *, with_cpr: bool, return_visits: int = 0, transfer: bool = False) -> str:
        """One injury event seen only by the wards, maybe with return visits / a transfer."""
        event = self.new_event()
        k = self.rng.choice(list(KOMMUNE_CENTRES))
        t = self.when()
        cpr = self.pseudonym() if with_cpr else None
        sex, age, ru = self.rng.choice("MK"), self.rng.randrange(3, 92), self.rng.choice(ROAD_USERS)
        xy = self.place(k) if self.rng.random() < 0.85 else None
        text = f"Testvej {self.rng.randrange(1, 200)}, {k}"
        arrive = t + dt.timedelta(minutes=self.rng.randrange(20, 150))
        first = self.contact(event, ankomst=arrive, ulykke_tid=t if self.rng.random() < 0.6 else None,
                             cpr=cpr, sex=sex, age=age, road_user=ru, kommunekode=k, xy=xy,
                             ulykkessted=text)
        hospital = first.split("|")[0]
        if transfer:
            other = next(h for h in HOSPITALS if h != hospital)
            self.contact(event, ankomst=arrive + dt.timedelta(hours=3), ulykke_tid=t, cpr=cpr, sex=sex,
                         age=age, road_user=ru, kommunekode=k, xy=xy, sygehus=other, severity="serious",
                         ulykkessted=text)
        for _ in range(return_visits):
            back = arrive + dt.timedelta(days=self.rng.randrange(1, 28), hours=self.rng.randrange(0, 5))
            # control visits: often no accident time, place re-typed (or blank with CPR)
            self.contact(event, ankomst=back, ulykke_tid=None, cpr=cpr, sex=sex, age=age, road_user=ru,
                         kommunekode=k if cpr else k,
                         xy=(self.near(xy, 30) if xy else None) if not cpr or self.rng.random() < 0.5 else None,
                         sygehus=hospital, ulykkessted=text if not cpr else None)
        return event

    def pair(self, *, police_cpr: bool, er_cpr: bool = True, next_day: bool = False,
             age_off: int = 0, er_unplaced: bool = False, er_far: bool = False,
             ru_variant: str | None = None, return_visit: bool = False) -> tuple[str, str]:
        """One injured person seen by both police and a ward: a true link."""
        event = self.new_event()
        k = self.rng.choice(list(KOMMUNE_CENTRES))
        t = self.when()
        if next_day:
            t = t.replace(hour=23, minute=self.rng.randrange(10, 50))
        xy = self.place(k)
        cpr = self.pseudonym()
        sex, age = self.rng.choice("MK"), self.rng.randrange(6, 90)
        ru = self.rng.choice(ROAD_USERS)
        uheld = self.accident(t, k, xy)
        pkey = self.person(uheld, 1, 1, cpr=cpr if police_cpr else None, sex=sex, age=age + age_off,
                           road_user=ru, severity=self.rng.choice(POLICE_SEVERITIES))
        er_xy = None if er_unplaced else (self.near(xy, 1500) if er_far else self.near(xy, 60))
        arrive = t + dt.timedelta(minutes=self.rng.randrange(25, 120))
        self.contact(event, ankomst=arrive, ulykke_tid=None if next_day else t,
                     cpr=cpr if er_cpr else None, sex=sex, age=age, road_user=ru_variant or ru,
                     kommunekode=k if self.rng.random() < 0.8 or er_unplaced else None, xy=er_xy,
                     quality="C" if er_far else "A")
        if return_visit:
            self.contact(event, ankomst=arrive + dt.timedelta(days=5), ulykke_tid=None,
                         cpr=cpr if er_cpr else None, sex=sex, age=age, road_user=ru_variant or ru,
                         kommunekode=k, xy=None)
        self.true_links[event] = pkey
        return event, pkey

    def police_only(self, *, decoy: bool, same_spot: bool = False) -> str:
        """An injured person the wards never saw; with a decoy ER event (another person,
        other sex and age) on the same date in the same kommune."""
        k = self.rng.choice(list(KOMMUNE_CENTRES))
        t = self.when()
        xy = self.place(k)
        sex, age = self.rng.choice("MK"), self.rng.randrange(18, 50)
        ru = self.rng.choice(ROAD_USERS)
        uheld = self.accident(t, k, xy)
        pkey = self.person(uheld, 1, 1, cpr=None, sex=sex, age=age,
                           road_user=ru, severity=self.rng.choice(POLICE_SEVERITIES))
        # an uninjured counterpart driver: never a casualty
        self.person(uheld, 2, 1, cpr=None, sex="M", age=40, road_user="car", severity="uninjured")
        if decoy:
            event = self.new_event()
            other_sex = "K" if sex == "M" else "M"
            self.contact(event, ankomst=t + dt.timedelta(minutes=40), ulykke_tid=t,
                         cpr=self.pseudonym() if self.rng.random() < 0.5 else None,
                         sex=other_sex, age=age + self.rng.randrange(12, 40), road_user=ru, kommunekode=k,
                         xy=self.near(xy, 40) if same_spot else self.place(k, 2_000))
        return pkey

    def two_person_accident(self) -> None:
        """A driver and a passenger both hurt in one crash, both seen at the ward; the police
        lack CPR, so the pairs must be told apart by sex and age."""
        k = self.rng.choice(list(KOMMUNE_CENTRES))
        t = self.when()
        xy = self.place(k)
        uheld = self.accident(t, k, xy)
        for personnr, (sex, age) in enumerate((("M", 47), ("K", 44)), start=1):
            event = self.new_event()
            pkey = self.person(uheld, 1, personnr, cpr=None, sex=sex, age=age, road_user="car",
                               severity="slight")
            self.contact(event, ankomst=t + dt.timedelta(minutes=50 + personnr), ulykke_tid=t,
                         cpr=self.pseudonym(), sex=sex, age=age, road_user="car", kommunekode=k,
                         xy=self.near(xy, 40))
            self.true_links[event] = pkey


def build_world(seed: int = 7, scale: int = 1) -> World:
    """~250 ER contacts and ~110 police persons (times ``scale``) covering every scenario."""
    w = World(random.Random(seed))
    for _ in range(scale):
        for i in range(70):
            w.er_only(with_cpr=i % 8 != 0)
        for i in range(20):
            w.er_only(with_cpr=True, return_visits=1 + i % 2)
        for _ in range(6):
            w.er_only(with_cpr=True, transfer=True)
        for _ in range(6):
            w.er_only(with_cpr=False, return_visits=1)
        for _ in range(3):
            w.er_only(with_cpr=False, transfer=True)
        for _ in range(20):
            w.pair(police_cpr=True)
        for _ in range(12):
            w.pair(police_cpr=False)
        for _ in range(4):
            w.pair(police_cpr=False, next_day=True)
        for _ in range(3):
            w.pair(police_cpr=False, age_off=1)
        for _ in range(3):
            w.pair(police_cpr=False, er_unplaced=True)
        for _ in range(2):
            w.pair(police_cpr=False, er_far=True)
        w.pair(police_cpr=False, ru_variant="e_bike")
        w.pair(police_cpr=True, return_visit=True)
        for _ in range(3):
            w.pair(police_cpr=False, er_cpr=False)  # tourists
        for i in range(25):
            w.police_only(decoy=i % 2 == 0, same_spot=i % 4 == 0)
        for _ in range(3):
            w.two_person_accident()
    return w


def add_special_cases(w: World) -> dict[str, str]:
    """Hand-made adversarial cases; returns names -> true event ids."""
    cases: dict[str, str] = {}
    # One person, two accidents four months apart; the second is police-reported.
    cpr = w.pseudonym()
    first = w.new_event()
    t1 = dt.datetime(2023, 3, 4, 16, 5)
    w.contact(first, ankomst=t1 + dt.timedelta(hours=1), ulykke_tid=t1, cpr=cpr, sex="K", age=33,
              road_user="cyclist", kommunekode="0561", xy=(478_100.0, 6_150_200.0))
    second = w.new_event()
    t2 = dt.datetime(2023, 7, 9, 8, 30)
    uheld = w.accident(t2, "0561", (479_000.0, 6_151_000.0))
    pkey = w.person(uheld, 1, 1, cpr=cpr, sex="K", age=33, road_user="cyclist", severity="serious")
    w.contact(second, ankomst=t2 + dt.timedelta(hours=1), ulykke_tid=t2, cpr=cpr, sex="K", age=33,
              road_user="cyclist", kommunekode="0561", xy=(479_020.0, 6_151_010.0))
    w.true_links[second] = pkey
    cases["two_accidents_first"], cases["two_accidents_second"] = first, second
    # Anchoring: visits on day 0 and day 20 are one event; day 35 is 35 days after the first
    # contact (> 30), so it starts a new event although it is only 15 days after the second.
    cpr = w.pseudonym()
    a, b = w.new_event(), w.new_event()
    t0 = dt.datetime(2023, 9, 1, 10, 0)
    for ev, day in ((a, 0), (a, 20), (b, 35)):
        w.contact(ev, ankomst=t0 + dt.timedelta(days=day, hours=1), ulykke_tid=None, cpr=cpr, sex="M",
                  age=61, road_user="car", kommunekode="0575", xy=None, sygehus="SVS Esbjerg")
    cases["anchor_a"], cases["anchor_b"] = a, b
    # Two CPR-less tourists: same day and place, same sex and road user, other ages -> two.
    t = dt.datetime(2023, 7, 20, 14, 0)
    for age in (24, 52):
        ev = w.new_event()
        w.contact(ev, ankomst=t + dt.timedelta(hours=1), ulykke_tid=t, cpr=None, sex="M", age=age,
                  road_user="cyclist", kommunekode="0563", xy=(468_500.0, 6_143_500.0),
                  ulykkessted="Strandvejen, Fanø")
        cases[f"tourist_{age}"] = ev
    # Same sex, age and road user, same week, but 20 km apart -> two events.
    for i, k in enumerate(("0561", "0550")):
        ev = w.new_event()
        w.contact(ev, ankomst=dt.datetime(2023, 8, 2 + i, 12, 0), ulykke_tid=None, cpr=None, sex="K",
                  age=19, road_user="moped", kommunekode=k, xy=KOMMUNE_CENTRES[k])
        cases[f"moped_{k}"] = ev
    # An injured police person whose accident row is missing: quarantined, no casualty.
    w.person("U-MISSING", 1, 1, cpr=None, sex="M", age=30, road_user="car", severity="slight")
    # A police accident with a flagged position: its X/Y must not be used.
    ev = w.new_event()
    t = dt.datetime(2023, 11, 3, 7, 45)
    uheld = w.accident(t, "0580", (540_000.0, 6_100_000.0), xy_flag="outside_kommune")
    pkey = w.person(uheld, 1, 1, cpr=w.pseudonym(), sex="M", age=70, road_user="car", severity="slight")
    w.contact(ev, ankomst=t + dt.timedelta(hours=1), ulykke_tid=t,
              cpr=w.persons[-1]["cpr_pseudonym"], sex="M", age=70, road_user="car", kommunekode="0580",
              xy=None)
    w.true_links[ev] = pkey
    cases["flagged_xy"] = ev
    return cases


def load(con: duckdb.DuckDBPyConnection, w: World) -> None:
    """Insert the world into the core tables."""
    for table, rows in (("er_contact", w.er), ("police_accident", w.accidents), ("police_person", w.persons)):
        if not rows:
            continue
        df = pd.DataFrame(rows)
        con.register("df_in", df)
        con.execute(f"INSERT INTO core.{table} BY NAME SELECT * FROM df_in")
        con.unregister("df_in")


def injured_keys(w: World) -> set[str]:
    known = {a["uheld_id"] for a in w.accidents}
    return {f"{p['uheld_id']}|{p['elementnr']}|{p['personnr']}" for p in w.persons
            if p["severity"] != "uninjured" and p["uheld_id"] in known}


@pytest.fixture(scope="module")
def linked() -> tuple[duckdb.DuckDBPyConnection, World, dict[str, str], LinkReport]:
    w = build_world()
    cases = add_special_cases(w)
    con = connect(":memory:")
    load(con, w)
    report = link_casualties(con, Settings())
    return con, w, cases, report


def contact_casualty(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    return dict(con.execute("SELECT sygehus || '|' || kontakt_id, casualty_id FROM core.er_contact").fetchall())


def test_return_visits_fold_into_exactly_the_true_events(linked):
    con, w, cases, report = linked
    cas = contact_casualty(con)
    assert len(cas) == w.n_contacts == report.n_er_contacts
    assert all(cas.values())
    # the partition of contacts by casualty_id equals the true partition by event
    found = {frozenset(k for k in cas if cas[k] == c) for c in set(cas.values())}
    truth = {frozenset(k for k in w.contact_event if w.contact_event[k] == e) for e in set(w.contact_event.values())}
    assert found == truth
    assert report.n_er_events == len(truth) == w.n_events
    assert report.n_return_visits_folded == w.n_contacts - w.n_events
    by_event = {w.contact_event[k]: cas[k] for k in cas}
    # one person, two accidents months apart: two casualties; the anchoring rule splits day 35
    assert by_event[cases["two_accidents_first"]] != by_event[cases["two_accidents_second"]]
    assert by_event[cases["anchor_a"]] != by_event[cases["anchor_b"]]
    assert by_event[cases["tourist_24"]] != by_event[cases["tourist_52"]]
    assert by_event[cases["moped_0561"]] != by_event[cases["moped_0550"]]
    n_anchor_a = con.execute(
        "SELECT n_er_contacts FROM core.casualty WHERE casualty_id = ?", [by_event[cases["anchor_a"]]]
    ).fetchone()[0]
    assert n_anchor_a == 2


def found_links(con: duckdb.DuckDBPyConnection, w: World) -> set[tuple[str, str]]:
    """(true event id, police key) for every ER contact sharing a casualty_id with a police person."""
    cas = contact_casualty(con)
    pol = dict(con.execute(
        "SELECT casualty_id, uheld_id || '|' || elementnr || '|' || personnr FROM core.police_person "
        "WHERE casualty_id IS NOT NULL").fetchall())
    return {(w.contact_event[k], pol[c]) for k, c in cas.items() if c in pol}


def precision_recall(found: set, truth: set) -> tuple[float, float]:
    tp = len(found & truth)
    return tp / max(len(found), 1), tp / max(len(truth), 1)


def test_links_have_high_precision_and_recall(linked):
    con, w, cases, report = linked
    cas = contact_casualty(con)
    found, truth = found_links(con, w), set(w.true_links.items())
    precision, recall = precision_recall(found, truth)
    assert precision >= 0.97, sorted(found - truth)
    assert recall >= 0.93, sorted(truth - found)
    assert report.n_links == len(found) == report.by_source["both"]
    event_of = {w.contact_event[k]: c for k, c in cas.items()}
    # the hard cases specifically
    assert event_of[cases["two_accidents_second"]] == "P-" + w.true_links[cases["two_accidents_second"]].replace("|", "-")
    assert not event_of[cases["two_accidents_first"]].startswith("P-")


def test_casualty_counts_by_source_and_no_duplicates(linked):
    con, w, cases, report = linked
    injured = injured_keys(w)
    n_links = report.n_links
    expected = {"both": n_links, "er": w.n_events - n_links, "police": len(injured) - n_links}
    got = dict(con.execute("SELECT source, count(*) FROM core.casualty GROUP BY 1").fetchall())
    assert got == expected == report.by_source
    # with this data the linker should find every true pair: exact counts against the truth
    assert n_links == len(w.true_links)
    assert report.n_casualties == w.n_events + len(injured) - len(w.true_links)
    assert con.execute("SELECT count(*) - count(DISTINCT casualty_id) FROM core.casualty").fetchone()[0] == 0
    # every injured police person (with an accident) has a casualty; uninjured ones do not
    rows = con.execute(
        "SELECT uheld_id || '|' || elementnr || '|' || personnr, severity, casualty_id FROM core.police_person"
    ).fetchall()
    for key, severity, cid in rows:
        if key in injured:
            assert cid == "P-" + key.replace("|", "-")
        else:
            assert cid is None, key
    assert con.execute(
        "SELECT count(*) FROM core.police_person p ANTI JOIN core.casualty c USING (casualty_id) "
        "WHERE p.casualty_id IS NOT NULL").fetchone()[0] == 0
    # single-source casualties carry no link probability; linked ones carry >= threshold
    assert con.execute("SELECT count(*) FROM core.casualty WHERE source <> 'both' AND link_probability IS NOT NULL").fetchone()[0] == 0
    assert con.execute("SELECT min(link_probability) FROM core.casualty WHERE source = 'both'").fetchone()[0] >= 0.9
    assert con.execute("SELECT sum(n_er_contacts) FROM core.casualty").fetchone()[0] == w.n_contacts
    assert con.execute("SELECT count(*) FROM core.casualty WHERE source = 'police' AND n_er_contacts <> 0").fetchone()[0] == 0


def test_orphan_police_person_is_quarantined(linked):
    con, *_ = linked
    rows = con.execute(
        "SELECT source, stage, record_key, reason FROM quality.quarantine WHERE stage = 'link'"
    ).fetchall()
    assert [(r[0], r[1], r[2]) for r in rows] == [("police_person", "link", "U-MISSING|1|1")]
    assert "no accident row" in rows[0][3]
    assert con.execute("SELECT casualty_id FROM core.police_person WHERE uheld_id = 'U-MISSING'").fetchone()[0] is None


def test_linked_casualty_fields_follow_the_rules(linked):
    con, w, cases, report = linked
    # an ER contact with no place, linked to a police-placed accident, takes the police X/Y
    row = con.execute("""
        SELECT c.casualty_id, c.x, c.y, c.geocode_quality, a.x, a.y, e.geocode_quality, e.x, e.geocode_method
        FROM core.casualty c
        JOIN core.police_accident a USING (uheld_id)
        JOIN core.er_contact e ON e.casualty_id = c.casualty_id
        WHERE c.source = 'both' AND e.geocode_method = 'police'
        ORDER BY c.casualty_id LIMIT 1""").fetchone()
    assert row is not None
    assert (row[1], row[2], row[3]) == (row[4], row[5], "police")
    assert (row[6], row[7]) == ("police", row[4])
    # every linked casualty takes the police date and uheld_id
    bad = con.execute("""
        SELECT count(*) FROM core.casualty c JOIN core.police_accident a USING (uheld_id)
        WHERE c.source = 'both' AND c.injury_date <> a.uheldsdato""").fetchone()[0]
    assert bad == 0
    # flagged police X/Y is not used: the casualty has no place, its contact stays unplaced
    flagged = contact_casualty(con)
    cid = next(c for k, c in flagged.items() if w.contact_event[k] == cases["flagged_xy"])
    assert con.execute("SELECT source, x, geocode_quality FROM core.casualty WHERE casualty_id = ?",
                       [cid]).fetchone() == ("both", None, "none")
    # severity: killed if either says so, else the hospital's when known
    sev = con.execute("""
        SELECT c.severity, p.severity, max(CASE e.severity WHEN 'killed' THEN 4 WHEN 'serious' THEN 3
               WHEN 'slight' THEN 2 ELSE 1 END)
        FROM core.casualty c
        JOIN core.police_person p USING (casualty_id)
        JOIN core.er_contact e USING (casualty_id)
        WHERE c.source = 'both' GROUP BY ALL""").fetchall()
    names = {4: "killed", 3: "serious", 2: "slight", 1: "unknown"}
    for got, police, er_rank in sev:
        er = names[er_rank]
        want = "killed" if "killed" in (police, er) else (er if er != "unknown" else police)
        assert got == want
    # age bands from the vocabulary, never a raw age
    bands = {r[0] for r in con.execute("SELECT DISTINCT age_band FROM core.casualty").fetchall()}
    assert bands <= {"0-14", "15-17", "18-24", "25-44", "45-64", "65-74", "75+", "unknown"}


def snapshot(con: duckdb.DuckDBPyConnection) -> tuple[list, list, list]:
    return (
        con.execute("SELECT * FROM core.casualty ORDER BY casualty_id").fetchall(),
        con.execute("SELECT sygehus, kontakt_id, casualty_id FROM core.er_contact ORDER BY 1, 2").fetchall(),
        con.execute("SELECT uheld_id, elementnr, personnr, casualty_id FROM core.police_person ORDER BY 1, 2, 3").fetchall(),
    )


def test_ids_stable_across_runs_and_input_order(linked):
    con, w, _, _ = linked
    first = snapshot(con)
    # a re-run on the same warehouse: the same casualties and ids. (Only link_probability
    # may move: the first run overwrote uncertain ER positions with the police's.)
    link_casualties(con, Settings())
    again = snapshot(con)
    assert again[1:] == first[1:]
    drop_prob = lambda rows: [r[:14] + r[15:] for r in rows]  # noqa: E731
    assert drop_prob(again[0]) == drop_prob(first[0])
    # the same data inserted in another order into a fresh warehouse gives the same result
    w2 = build_world()
    add_special_cases(w2)
    rng = random.Random(99)
    rng.shuffle(w2.er)
    rng.shuffle(w2.persons)
    rng.shuffle(w2.accidents)
    con2 = connect(":memory:")
    load(con2, w2)
    link_casualties(con2, Settings())
    assert snapshot(con2) == first


def test_empty_inputs_give_an_empty_casualty_table():
    con = connect(":memory:")
    report = link_casualties(con, Settings())
    assert (report.n_casualties, report.n_links, report.by_source) == (0, 0, {"both": 0, "er": 0, "police": 0})


def test_police_only_run_without_er_contacts():
    w = World(random.Random(3))
    keys = [w.police_only(decoy=False) for _ in range(5)]
    con = connect(":memory:")
    load(con, w)
    report = link_casualties(con, Settings())
    assert report.by_source == {"both": 0, "er": 0, "police": 5}
    ids = {r[0] for r in con.execute("SELECT casualty_id FROM core.casualty").fetchall()}
    assert ids == {"P-" + k.replace("|", "-") for k in keys}


def test_scale_20k_contacts_links_correctly():
    """A demo-sized night (17,000+ contacts) keeps its precision and recall; speed is measured in
    bench/bench_link.py, not here."""
    w = build_world(seed=11, scale=1)
    for _ in range(12_500):
        w.er_only(with_cpr=w.rng.random() < 0.95, return_visits=1 if w.rng.random() < 0.4 else 0)
    for _ in range(11):
        for _ in range(60):
            w.pair(police_cpr=w.rng.random() < 0.5)
        for _ in range(25):
            w.police_only(decoy=True)
    assert w.n_contacts > 17_000 and len(w.persons) > 1_300
    con = connect(":memory:")
    load(con, w)
    report = link_casualties(con, Settings())
    assert report.n_er_events == w.n_events
    precision, recall = precision_recall(found_links(con, w), set(w.true_links.items()))
    assert precision >= 0.97 and recall >= 0.93, (precision, recall)


def test_splink_settings_mean_the_same_sql_on_duckdb_and_spark():
    """Backend-agnostic linkage: every comparison level and blocking rule parses to the same
    expression in DuckDB's and Spark's SQL dialects (no dialect-only function such as
    DuckDB's date_diff), so the settings run unchanged on Splink's Spark backend."""
    import sqlglot

    from skadestue.link.model import apply_trained_m, trained_m
    from skadestue.link.priors import BLOCKING_RULES, INPUT_COLUMNS, splink_settings

    settings = apply_trained_m(splink_settings(5_000, 3 * 365), trained_m())
    sqls = [lv["sql_condition"] for c in settings["comparisons"] for lv in c["comparison_levels"]]
    sqls += list(settings["blocking_rules_to_generate_predictions"])
    assert list(BLOCKING_RULES) == settings["blocking_rules_to_generate_predictions"]
    assert len(sqls) == 28 + 5  # 6 comparisons' levels, 5 blocking rules
    columns = set()
    for sql in sqls:
        if sql == "ELSE":
            continue
        duck, spark = sqlglot.parse_one(sql, read="duckdb"), sqlglot.parse_one(sql, read="spark")
        assert duck == spark, sql
        assert not list(duck.find_all(sqlglot.exp.Anonymous)), sql  # no unknown (dialect) functions
        columns |= {c.name.removesuffix("_l").removesuffix("_r") for c in duck.find_all(sqlglot.exp.Column)}
    assert columns <= set(INPUT_COLUMNS), columns - set(INPUT_COLUMNS)
