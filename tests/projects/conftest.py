from tests.sharing.conftest import make_video

__all__ = ["make_video"]
