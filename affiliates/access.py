"""The portal's session keys: which email is signed in, and which of its memberships it is viewing.

They stay in the domain app because the sign-in flows and test and bench clients set them; the
page access checks that read them live in refapp.portal.access and refapp.panel.access.
"""

PORTAL_EMAIL = "portal_email"
PORTAL_AFFILIATE = "portal_affiliate_id"
