{{ config(enabled=is_coarser_than_base("4h"), indexes=bar_key_indexes()) }}
{{ resample("4h") }}
