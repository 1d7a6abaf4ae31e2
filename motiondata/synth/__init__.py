"""The project's own HumanML3D-format training data: a forward-kinematics body (body.py), static pose
families with captions and geometric checks (poses.py), the corpus writer (corpus.py) and the pose10k
caption list (captions.py)."""
