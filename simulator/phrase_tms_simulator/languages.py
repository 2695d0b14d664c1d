"""Phrase TMS language codes accepted by the simulator.

Phrase writes language codes in lower case with an underscore before the region or script
(`de`, `de_de`, `pt_br`, `zh_cn`, `sr_latn_rs`). The simulator rejects a code outside this table
with 400, as Phrase rejects an unknown code.

NOTE: the table is a selection of common languages and regions written in Phrase's format, not a
copy of Phrase's full list, so a rare code that Phrase accepts may be rejected here.
"""

from __future__ import annotations

_BASE_LANGUAGES = (
    "af am ar az be bg bn bs ca cs cy da de el en es et eu fa fi fil fr ga gl gu he hi hr hu hy id "
    "is it ja ka kk km kn ko ky lo lt lv mk ml mn mr ms mt my nb ne nl nn no pa pl ps pt ro ru si "
    "sk sl so sq sr sv sw ta te tg th tk tl tr uk ur uz vi xh zh zu"
).split()

_REGIONAL_VARIANTS = (
    "af_za am_et ar_ae ar_bh ar_dz ar_eg ar_iq ar_jo ar_kw ar_lb ar_ly ar_ma ar_om ar_qa "
    "ar_sa ar_sy ar_tn ar_ye az_latn_az be_by bg_bg bn_bd bn_in bs_ba ca_es cs_cz cy_gb da_dk "
    "de_at de_be de_ch de_de de_li de_lu el_cy el_gr en_au en_ca en_gb en_ie en_in en_nz "
    "en_ph en_sg en_us en_za es_419 es_ar es_bo es_cl es_co es_cr es_do es_ec es_es es_gt "
    "es_hn es_mx es_ni es_pa es_pe es_pr es_py es_sv es_us es_uy es_ve et_ee eu_es fa_ir "
    "fi_fi fil_ph fr_be fr_ca fr_ch fr_fr fr_lu fr_ma ga_ie gl_es gu_in he_il hi_in hr_ba "
    "hr_hr hu_hu hy_am id_id is_is it_ch it_it ja_jp ka_ge kk_kz km_kh kn_in ko_kr ky_kg "
    "lo_la lt_lt lv_lv mk_mk ml_in mn_mn mr_in ms_my ms_sg mt_mt my_mm nb_no ne_np nl_be "
    "nl_nl nn_no pa_in pl_pl ps_af pt_ao pt_br pt_mz pt_pt ro_md ro_ro ru_by ru_kz ru_ru "
    "si_lk sk_sk sl_si so_so sq_al sr_cyrl_rs sr_latn_rs sr_latn_me sv_fi sv_se sw_ke sw_tz "
    "ta_in ta_lk te_in tg_tj th_th tk_tm tl_ph tr_cy tr_tr uk_ua ur_in ur_pk uz_latn_uz vi_vn "
    "xh_za zh_cn zh_hk zh_mo zh_sg zh_tw zu_za"
).split()

LANGUAGE_CODES: frozenset[str] = frozenset(_BASE_LANGUAGES) | frozenset(_REGIONAL_VARIANTS)


def is_known_language(code: object) -> bool:
    """Tell whether `code` is a Phrase language code in this table (case-sensitive, lower case)."""
    return isinstance(code, str) and code in LANGUAGE_CODES
