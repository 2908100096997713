/* asr_internal.h - private layout of the ASR model and stream (asr/ only). */
#ifndef VOX_ASR_INTERNAL_H
#define VOX_ASR_INTERNAL_H

#include "vox_asr.h"
#include "vox_lm.h"
#include "vox_mel.h"
#include "vox_params.h"
#include "vox_safetensors.h"
#include "vox_tekken.h"

struct vox_asr_model {
    vox_backend *be;
    vox_log_level log;
    vox_params *params;
    vox_st_file *st;
    vox_tekken *tok;
    vox_mel *mel;
    vox_lm_store store;
    vox_asr_info info;

    vox_lm_dims enc, dec;
    int n_mels, ds, mel_per_tok, hop;
    int ada_dim;
    int64_t max_pos; /* model_max_length */

    vox_mat conv0_w; /* [enc_dim][n_mels*3] */
    float *conv0_b;  /* [enc_dim] */
    vox_mat conv1_w; /* [enc_dim][enc_dim*3] */
    float *conv1_b;  /* [enc_dim] */
    vox_lm_layer *enc_layers; /* [enc_layers] */
    float *enc_norm;          /* [enc_dim] */
    vox_mat adapt0;           /* [dec_dim][ds*enc_dim] */
    vox_mat adapt2;           /* [dec_dim][dec_dim] */
    vox_mat tok_emb;          /* [vocab][dec_dim], also the tied LM head */
    vox_lm_layer *dec_layers; /* [dec_layers] */
    vox_mat *ada_down;        /* [dec_layers] of [ada_dim][dec_dim] */
    vox_mat *ada_up;          /* [dec_layers] of [dec_dim][ada_dim] */
    float *dec_norm;          /* [dec_dim] */
};

#endif
