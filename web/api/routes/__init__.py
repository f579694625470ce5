"""The API's routers, one module each; ``web.api.app`` mounts them under ``/api/v1``."""
