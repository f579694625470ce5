"""Real cities the generated customers live in, with their sales region and currency.

Local time is UTC plus the city's standard offset (no daylight saving), so an hour of day
means the same thing in every run. Amounts are priced in US dollars and converted at the
fixed rates of :data:`ecap.currency.FX_PER_USD`, the table the KPIs and the lake normalise
with.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import orjson


@dataclass(frozen=True)
class City:
    name: str
    country: str
    region: str
    lat: float
    lon: float
    utc_offset: float
    currency: str
    weight: float
    """Relative share of the customer base living there."""

    def location(self) -> dict[str, object]:
        """The city as an ``ecap.events.Location`` payload."""
        return {
            "city": self.name,
            "country": self.country,
            "region": self.region,
            "lat": self.lat,
            "lon": self.lon,
        }

    def location_json(self) -> orjson.Fragment:
        """The location pre-serialised, for embedding into records without re-encoding."""
        return orjson.Fragment(orjson.dumps(self.location()))


REGIONS = ("NA", "EMEA", "APAC", "LATAM")

CITIES: tuple[City, ...] = (
    # North America
    City("New York", "US", "NA", 40.7128, -74.006, -5, "USD", 10),
    City("Los Angeles", "US", "NA", 34.0522, -118.2437, -8, "USD", 8),
    City("Chicago", "US", "NA", 41.8781, -87.6298, -6, "USD", 6),
    City("Houston", "US", "NA", 29.7604, -95.3698, -6, "USD", 5),
    City("Phoenix", "US", "NA", 33.4484, -112.074, -7, "USD", 3),
    City("Seattle", "US", "NA", 47.6062, -122.3321, -8, "USD", 4),
    City("Miami", "US", "NA", 25.7617, -80.1918, -5, "USD", 4),
    City("Boston", "US", "NA", 42.3601, -71.0589, -5, "USD", 4),
    City("Denver", "US", "NA", 39.7392, -104.9903, -7, "USD", 3),
    City("Atlanta", "US", "NA", 33.749, -84.388, -5, "USD", 4),
    City("Toronto", "CA", "NA", 43.6532, -79.3832, -5, "CAD", 5),
    City("Vancouver", "CA", "NA", 49.2827, -123.1207, -8, "CAD", 3),
    City("Montreal", "CA", "NA", 45.5017, -73.5673, -5, "CAD", 3),
    # Europe, Middle East, Africa
    City("London", "GB", "EMEA", 51.5074, -0.1278, 0, "GBP", 10),
    City("Manchester", "GB", "EMEA", 53.4808, -2.2426, 0, "GBP", 3),
    City("Dublin", "IE", "EMEA", 53.3498, -6.2603, 0, "EUR", 2),
    City("Lisbon", "PT", "EMEA", 38.7223, -9.1393, 0, "EUR", 2),
    City("Paris", "FR", "EMEA", 48.8566, 2.3522, 1, "EUR", 8),
    City("Lyon", "FR", "EMEA", 45.764, 4.8357, 1, "EUR", 2),
    City("Berlin", "DE", "EMEA", 52.52, 13.405, 1, "EUR", 6),
    City("Munich", "DE", "EMEA", 48.1351, 11.582, 1, "EUR", 3),
    City("Hamburg", "DE", "EMEA", 53.5511, 9.9937, 1, "EUR", 3),
    City("Madrid", "ES", "EMEA", 40.4168, -3.7038, 1, "EUR", 4),
    City("Barcelona", "ES", "EMEA", 41.3874, 2.1686, 1, "EUR", 3),
    City("Rome", "IT", "EMEA", 41.9028, 12.4964, 1, "EUR", 3),
    City("Milan", "IT", "EMEA", 45.4642, 9.19, 1, "EUR", 3),
    City("Amsterdam", "NL", "EMEA", 52.3676, 4.9041, 1, "EUR", 3),
    City("Brussels", "BE", "EMEA", 50.8503, 4.3517, 1, "EUR", 2),
    City("Vienna", "AT", "EMEA", 48.2082, 16.3738, 1, "EUR", 2),
    City("Zurich", "CH", "EMEA", 47.3769, 8.5417, 1, "CHF", 2),
    City("Stockholm", "SE", "EMEA", 59.3293, 18.0686, 1, "SEK", 2),
    City("Warsaw", "PL", "EMEA", 52.2297, 21.0122, 1, "PLN", 3),
    City("Tel Aviv", "IL", "EMEA", 32.0853, 34.7818, 2, "ILS", 2),
    City("Johannesburg", "ZA", "EMEA", -26.2041, 28.0473, 2, "ZAR", 2),
    City("Istanbul", "TR", "EMEA", 41.0082, 28.9784, 3, "TRY", 3),
    City("Dubai", "AE", "EMEA", 25.2048, 55.2708, 4, "AED", 2),
    # Asia-Pacific
    City("Mumbai", "IN", "APAC", 19.076, 72.8777, 5.5, "INR", 4),
    City("Bangalore", "IN", "APAC", 12.9716, 77.5946, 5.5, "INR", 3),
    City("Bangkok", "TH", "APAC", 13.7563, 100.5018, 7, "THB", 2),
    City("Singapore", "SG", "APAC", 1.3521, 103.8198, 8, "SGD", 3),
    City("Kuala Lumpur", "MY", "APAC", 3.139, 101.6869, 8, "MYR", 2),
    City("Manila", "PH", "APAC", 14.5995, 120.9842, 8, "PHP", 2),
    City("Hong Kong", "HK", "APAC", 22.3193, 114.1694, 8, "HKD", 3),
    City("Shanghai", "CN", "APAC", 31.2304, 121.4737, 8, "CNY", 4),
    City("Taipei", "TW", "APAC", 25.033, 121.5654, 8, "TWD", 2),
    City("Tokyo", "JP", "APAC", 35.6762, 139.6503, 9, "JPY", 6),
    City("Osaka", "JP", "APAC", 34.6937, 135.5023, 9, "JPY", 3),
    City("Sydney", "AU", "APAC", -33.8688, 151.2093, 10, "AUD", 4),
    City("Melbourne", "AU", "APAC", -37.8136, 144.9631, 10, "AUD", 3),
    City("Auckland", "NZ", "APAC", -36.8485, 174.7633, 12, "NZD", 2),
    # Latin America
    City("Mexico City", "MX", "LATAM", 19.4326, -99.1332, -6, "MXN", 5),
    City("Guadalajara", "MX", "LATAM", 20.6597, -103.3496, -6, "MXN", 2),
    City("Monterrey", "MX", "LATAM", 25.6866, -100.3161, -6, "MXN", 2),
    City("São Paulo", "BR", "LATAM", -23.5505, -46.6333, -3, "BRL", 6),
    City("Rio de Janeiro", "BR", "LATAM", -22.9068, -43.1729, -3, "BRL", 4),
    City("Lima", "PE", "LATAM", -12.0464, -77.0428, -5, "PEN", 2),
    City("Panama City", "PA", "LATAM", 8.9824, -79.5199, -5, "USD", 1),
    City("San Juan", "PR", "LATAM", 18.4655, -66.1057, -4, "USD", 1),
)

EARTH_RADIUS_KM = 6371.0


def distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle (haversine) distance."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(h))


def city_distance(a: int, b: int) -> float:
    """Distance between two cities of :data:`CITIES`, by index."""
    ca, cb = CITIES[a], CITIES[b]
    return distance_km(ca.lat, ca.lon, cb.lat, cb.lon)


def far_cities(home: int, min_km: float) -> list[int]:
    """Indices of the cities at least ``min_km`` away from ``home``, nearest first."""
    found = [(city_distance(home, i), i) for i in range(len(CITIES))]
    return [i for d, i in sorted(found) if d >= min_km]
