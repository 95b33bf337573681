from signing_service.accounts.permissions import Capabilities


def permissions(request):
    return {"can": Capabilities(request.user)}
