"""Feature names and constants shared by Transform, Trainer, signatures and evaluation."""

# Raw columns, as ExampleGen reads them from the prepared CSV files.
TEXT_KEY = "text"
LABEL_KEY = "label"

# Transformed features.
TOKENS_KEY = "tokens"  # int64 [max_sequence_length], 0 = padding, 1.. = vocabulary, then OOV
TOKEN_COUNT_KEY = "token_count"  # int64, tokens in the review before padding/truncation

# tf.Transform vocabulary file name (looked up again by the Trainer for its size).
VOCAB_NAME = "tokens"

# Id 0 is reserved for padding; vocabulary ids are shifted by this much.
PADDING_ID = 0
ID_OFFSET = 1

# Serving signature names and outputs.
SERVING_RAW = "serving_default"
SERVING_TF_EXAMPLE = "serving_tf_example"
# TFMA preprocessing function: serialized tf.Example -> features to slice the evaluation by.
TRANSFORM_FEATURES = "transform_features"
LENGTH_BUCKET_KEY = "length_bucket"
# Review length (tokens before truncation) bucket boundaries; names like "100-199", ">=400".
LENGTH_BUCKET_BOUNDARIES = (100, 200, 400)
OUTPUT_PROBABILITIES = "probabilities"
OUTPUT_LABEL = "label"
OUTPUT_CLASS_NAME = "class_name"
OUTPUT_POSITIVE = "positive_probability"  # only for 2 classes; what TFMA's binary metrics read
