"""The queries the domain needs, one module per concern (cards, listing, reservations …).

Hot reads run prebuilt Core statements on a raw pooled DBAPI connection; writes go through the ORM
session of a :class:`~app.db.UnitOfWork`.
"""
