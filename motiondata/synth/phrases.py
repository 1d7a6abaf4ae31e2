"""The words of the pose families: training phrases, and held-out phrases kept for evaluation.

A phrase continues "a person ..." (motiondata.synth.captions adds the subject, an adverb and a tail). Families
that are mirrored at random (`mirror=True` in motiondata.synth.poses) name no side; the others name theirs.
`HELDOUT` phrases never appear in a training caption: motiondata.synth.evaluate asks the model for them to
measure how it follows wordings it has not seen. Training phrases were written without looking at them, and
tests/test_synth_corpus.py checks that no training phrase repeats one.
"""

TRAINING = {
    "stand": (
        "stands still", "stands upright with the arms at the sides", "stands straight and relaxed",
        "stands in place", "is standing with both arms down", "stands still facing forward",
    ),
    "t_pose": (
        "holds both arms straight out to the sides", "stands in a t-pose", "spreads the arms out wide",
        "extends both arms sideways at shoulder height", "raises the arms out to the sides like a t",
    ),
    "arms_up": (
        "raises both arms above the head", "lifts both hands up high", "puts both hands up in the air",
        "stretches both arms straight up", "holds both arms up over the head",
    ),
    "raise_left_arm": (
        "raises the left arm above the head", "lifts the left hand up high", "puts the left hand up",
        "holds the left arm straight up", "raises the left hand in the air",
    ),
    "raise_right_arm": (
        "raises the right arm above the head", "lifts the right hand up high", "puts the right hand up",
        "holds the right arm straight up", "raises the right hand in the air",
    ),
    "wave": (
        "waves hello with one hand", "waves", "raises a hand and waves", "waves goodbye", "waves a hand at someone",
    ),
    "hands_on_hips": (
        "puts both hands on the hips", "stands with the hands on the hips", "rests the hands on the hips",
        "places the hands on the waist", "stands with arms akimbo",
    ),
    "arms_crossed": (
        "crosses the arms", "stands with the arms crossed", "folds the arms across the chest",
        "crosses both arms in front of the chest", "stands with folded arms",
    ),
    "reach_forward": (
        "reaches forward with both arms", "holds both arms straight out in front", "stretches both hands forward",
        "extends both arms forward", "puts both arms out in front",
    ),
    "reach_up": (
        "stands on tiptoes and reaches up", "reaches up high on the toes", "stretches up on tiptoe with both arms",
        "rises onto the toes and reaches overhead", "reaches for something high on tiptoes",
    ),
    "prayer_hands": (
        "puts the palms together in front of the chest", "holds the hands together at the chest",
        "presses both palms together", "joins the hands in front of the chest", "holds a prayer position",
    ),
    "hands_on_head": (
        "puts both hands on the head", "places the hands on top of the head", "holds the head with both hands",
        "rests both hands on the head", "holds both hands on top of the head",
    ),
    "salute": (
        "salutes with the right hand", "gives a military salute", "raises the right hand to the forehead",
        "stands and salutes", "salutes",
    ),
    "punch": (
        "throws a punch forward", "punches straight ahead", "punches with one fist", "jabs forward",
        "extends a fist forward in a punch",
    ),
    "boxing_guard": (
        "holds up the fists like a boxer", "stands in a boxing stance", "puts the fists up to fight",
        "raises both fists in front of the face", "takes a fighting stance",
    ),
    "bow": (
        "bows", "bows forward politely", "takes a bow", "bows with the arms at the sides",
        "bends slightly forward in a bow",
    ),
    "bend_forward": (
        "bends forward at the waist", "leans the upper body forward", "bends over",
        "bends forward with straight legs", "bends down forward",
    ),
    "touch_toes": (
        "bends down and touches the toes", "touches the toes", "reaches down to the toes",
        "bends over to touch the feet", "stretches down to touch the floor",
    ),
    "pick_up": (
        "bends down to pick something up", "picks something up from the floor",
        "reaches down to the ground with one hand", "bends the knees and picks up an object",
        "crouches to grab something on the floor",
    ),
    "arch_back": (
        "arches the back", "leans back", "bends backward", "arches backward with the arms up",
        "leans back and looks up",
    ),
    "side_bend_left": (
        "bends to the left side", "leans to the left", "stretches sideways to the left",
        "does a side bend to the left", "tilts the upper body to the left",
    ),
    "side_bend_right": (
        "bends to the right side", "leans to the right", "stretches sideways to the right",
        "does a side bend to the right", "tilts the upper body to the right",
    ),
    "twist": (
        "twists the torso to the side", "turns the upper body to one side", "twists at the waist",
        "rotates the torso", "twists the upper body",
    ),
    "squat": (
        "squats down", "does a squat", "crouches down low", "squats with the arms forward",
        "bends the knees into a deep squat",
    ),
    "lunge_left": (
        "lunges forward with the left leg", "does a lunge with the left foot forward",
        "steps into a lunge with the left leg", "lunges on the left leg", "holds a left leg lunge",
    ),
    "lunge_right": (
        "lunges forward with the right leg", "does a lunge with the right foot forward",
        "steps into a lunge with the right leg", "lunges on the right leg", "holds a right leg lunge",
    ),
    "kneel": (
        "kneels on both knees", "kneels down", "gets down on the knees", "kneels upright", "kneels on the floor",
    ),
    "kneel_one_knee": (
        "kneels on one knee", "goes down on one knee", "takes a knee", "kneels with one foot forward",
        "drops to one knee",
    ),
    "sit_chair": (
        "sits on a chair", "sits down on a chair", "sits on a seat with the hands on the thighs",
        "sits upright on a chair", "sits on a stool",
    ),
    "sit_cross_legged": (
        "sits cross-legged on the floor", "sits on the ground with crossed legs", "sits cross-legged",
        "sits on the floor with the legs crossed", "sits in a cross-legged position",
    ),
    "sit_legs_out": (
        "sits on the floor with the legs straight out", "sits on the ground with the legs extended",
        "sits on the floor leaning on the hands", "sits down on the ground with straight legs",
        "sits with both legs stretched forward",
    ),
    "one_leg_balance": (
        "balances on one leg", "stands on one foot", "lifts one knee and balances",
        "stands on one leg with the knee raised", "raises one knee up",
    ),
    "kick_forward": (
        "kicks forward", "kicks the leg up in front", "does a front kick", "kicks high with one leg",
        "kicks straight ahead",
    ),
    "side_kick": (
        "kicks to the side", "does a side kick", "lifts one leg out to the side", "kicks one leg sideways",
        "raises a leg out sideways",
    ),
    "walk_stride": (
        "walks forward", "takes a step forward", "is walking", "walks", "steps forward",
    ),
    "run_stride": (
        "runs forward", "is running", "runs", "sprints forward", "jogs forward",
    ),
    "jump": (
        "jumps up", "jumps in the air", "jumps with both feet off the ground", "leaps up", "jumps straight up",
    ),
    "star_jump": (
        "does a jumping jack", "does a star jump", "jumps with the arms and legs spread",
        "jumps spreading the arms and legs", "jumps in a star shape",
    ),
    "lie_back": (
        "lies on the back", "lies down on the back", "lies flat on the floor face up",
        "lies on the ground on the back", "lies down facing up",
    ),
    "lie_front": (
        "lies on the stomach", "lies face down on the floor", "lies down on the front",
        "lies on the ground face down", "lies prone on the floor",
    ),
    "plank": (
        "holds a plank", "is in a push-up position", "does a push-up", "holds a high plank on the hands",
        "gets into a plank position",
    ),
    "downward_dog": (
        "does downward dog", "holds a downward dog yoga pose", "makes an upside down v with the body",
        "does the downward facing dog pose", "puts the hands and feet on the floor with the hips up",
    ),
    "cobra": (
        "does the cobra pose", "lies face down and pushes the chest up", "holds a cobra yoga pose",
        "lifts the chest off the floor with the hands", "arches up from the stomach",
    ),
    "childs_pose": (
        "does the child's pose", "kneels and folds forward with the arms out", "rests in child's pose",
        "sits back on the heels and bends forward", "kneels and stretches the arms forward on the floor",
    ),
    "bridge": (
        "does a bridge", "lies on the back and lifts the hips", "holds a glute bridge",
        "raises the hips up while lying down", "does the bridge pose",
    ),
    "tree_pose": (
        "does the tree pose", "stands on one leg in tree pose", "holds a yoga tree pose",
        "balances with one foot against the other leg", "does tree pose with the hands together",
    ),
    "warrior_two": (
        "does warrior two", "holds a warrior pose with the arms out", "does the warrior two yoga pose",
        "stands in a wide stance with a bent knee and arms out", "does a warrior pose",
    ),
}

HELDOUT = {
    "stand": (
        "remains upright with the hands hanging by the sides", "holds a neutral upright stance",
    ),
    "t_pose": (
        "stretches both arms horizontally away from the body", "forms a letter t with the body",
    ),
    "arms_up": (
        "reaches toward the sky with both hands", "throws both arms overhead",
    ),
    "raise_left_arm": (
        "sticks the left arm up overhead", "reaches up with only the left hand",
    ),
    "raise_right_arm": (
        "sticks the right arm up overhead", "reaches up with only the right hand",
    ),
    "wave": (
        "greets somebody with a raised hand", "signals hi with one hand up",
    ),
    "hands_on_hips": (
        "plants both fists on the waist", "holds the hips with both hands",
    ),
    "arms_crossed": (
        "wraps the arms over the chest", "keeps the arms folded in front of the body",
    ),
    "reach_forward": (
        "points both arms ahead at shoulder level", "holds the arms out in front like a zombie",
    ),
    "reach_up": (
        "goes up on the balls of the feet with hands up high", "tiptoes to reach a high shelf",
    ),
    "prayer_hands": (
        "brings the palms together in a namaste", "clasps the hands in front of the heart",
    ),
    "hands_on_head": (
        "lays both palms on top of the head", "cups the head with the elbows out",
    ),
    "salute": (
        "touches the right brow in a salute", "greets with a soldier's salute",
    ),
    "punch": (
        "strikes forward with a straight punch", "hits the air in front with one fist",
    ),
    "boxing_guard": (
        "guards the face with both fists", "gets ready to box with hands up",
    ),
    "bow": (
        "gives a respectful bow", "bows the upper body to greet someone",
    ),
    "bend_forward": (
        "folds forward at the hips", "tips the torso forward",
    ),
    "touch_toes": (
        "does a forward fold with hands at the feet", "folds over and reaches for the toes",
    ),
    "pick_up": (
        "lowers down to lift an item off the ground", "scoops something off the floor",
    ),
    "arch_back": (
        "tilts the upper body backward", "does a standing backbend",
    ),
    "side_bend_left": (
        "bends the torso toward the left", "leans over to the left side",
    ),
    "side_bend_right": (
        "bends the torso toward the right", "leans over to the right side",
    ),
    "twist": (
        "swivels the chest to one side", "does a standing spinal twist",
    ),
    "squat": (
        "sinks down into a squat", "lowers the hips toward the floor",
    ),
    "lunge_left": (
        "bends the left knee in a forward lunge", "lunges with the left foot in front",
    ),
    "lunge_right": (
        "bends the right knee in a forward lunge", "lunges with the right foot in front",
    ),
    "kneel": (
        "rests on both knees with the back straight", "drops onto both knees",
    ),
    "kneel_one_knee": (
        "gets down on a single knee", "kneels as if proposing",
    ),
    "sit_chair": (
        "takes a seat on a chair", "is seated on a bench with feet on the floor",
    ),
    "sit_cross_legged": (
        "sits on the ground like a meditating monk", "sits tailor style on the floor",
    ),
    "sit_legs_out": (
        "sits on the floor propped up on the arms", "rests on the ground with legs out in front",
    ),
    "one_leg_balance": (
        "holds a single leg balance", "keeps one foot off the ground like a flamingo",
    ),
    "kick_forward": (
        "swings a straight leg up in front", "delivers a high front kick",
    ),
    "side_kick": (
        "extends a leg laterally in a kick", "does a karate side kick",
    ),
    "walk_stride": (
        "strolls ahead mid step", "is caught in the middle of a walking step",
    ),
    "run_stride": (
        "dashes ahead at full speed", "is caught mid stride while running",
    ),
    "jump": (
        "hops into the air with both legs", "springs up off the floor",
    ),
    "star_jump": (
        "leaps with limbs spread wide", "jumps making an x shape",
    ),
    "lie_back": (
        "rests flat on the back looking at the ceiling", "is sprawled on the floor face up",
    ),
    "lie_front": (
        "rests flat on the belly", "is stretched out on the floor facing down",
    ),
    "plank": (
        "supports the straight body on the hands and toes", "holds the top of a push-up",
    ),
    "downward_dog": (
        "forms an inverted v shape on hands and feet", "does a yoga down dog",
    ),
    "cobra": (
        "does an upward facing stretch from lying prone", "raises the upper body off the mat on the hands",
    ),
    "childs_pose": (
        "curls forward over the knees with arms reaching ahead", "takes a resting kneeling fold",
    ),
    "bridge": (
        "pushes the pelvis up from the floor", "lifts the hips off the mat with feet planted",
    ),
    "tree_pose": (
        "places one sole on the inner thigh and balances", "balances like a tree in yoga",
    ),
    "warrior_two": (
        "holds a wide yoga lunge with both arms extended", "takes warrior ii",
    ),
}
