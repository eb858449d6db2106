"""Django's SQLite backend, told SQLite's real bound-parameter limit.

Django 5.2 assumes the historic limit of 999 and so splits a bulk insert of orders (22 columns)
into batches of 45 rows; SQLite builds since 3.32 allow 32,766 or more. Django 6.0 reads the
limit from the connection the same way; drop this module when the project moves to it.
"""

import sqlite3

from django.db.backends.sqlite3 import base, features
from django.utils.functional import cached_property


class DatabaseFeatures(features.DatabaseFeatures):
    @cached_property
    def max_query_params(self) -> int:  # type: ignore[override]
        self.connection.ensure_connection()
        return self.connection.connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)


class DatabaseWrapper(base.DatabaseWrapper):
    features_class = DatabaseFeatures
