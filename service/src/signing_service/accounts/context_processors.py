from signing_service.accounts.permissions import Capabilities

# The main menu's section of each URL namespace; Certificate Authorities are reached from the
# Signing Certificates page, so they count as part of it.
MENU_SECTIONS = {
    "identities": "identities",
    "authorities": "identities",
    "access": "api_keys",
    "audit": "audit",
    "reference": "api",
    "configuration": "settings",
}


def permissions(request):
    return {"can": Capabilities(request.user)}


def menu_section(request):
    """The main-menu section of the requested page (``menu_section``, "" when it has none), for
    base.html to mark the current link with aria-current."""
    match = getattr(request, "resolver_match", None)
    if match is None:
        return {"menu_section": ""}
    if match.namespace == "accounts":
        # Of the accounts pages, only the user pages and the password change have a menu link.
        if match.url_name == "users" or match.url_name.startswith("user_"):
            return {"menu_section": "users"}
        return {"menu_section": "password" if match.url_name == "password_change" else ""}
    return {"menu_section": MENU_SECTIONS.get(match.namespace, "")}
