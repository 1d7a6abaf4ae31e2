"""The project's own training data: a forward-kinematics body (body.py), static pose families with captions and
geometric checks (poses.py), the pose corpus writer (corpus.py), the contact corpus writer (scenes.py) and the
pose10k caption list (captions.py)."""
import json
from pathlib import Path


def read_corpus_info(root):
    """The corpus_info.json a generator wrote in `root` (generator version, seed, counts), or {} for other data."""
    path = Path(root) / "corpus_info.json"
    return json.loads(path.read_text()) if path.is_file() else {}
